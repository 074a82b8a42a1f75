//! The executable as `build.rs` links it.

/// ELF's `e_type` of an executable linked at a fixed address; a position-independent one is
/// `ET_DYN` (3).
#[cfg(target_os = "linux")]
const ET_EXEC: u16 = 2;
#[cfg(target_os = "linux")]
const ET_DYN: u16 = 3;

#[cfg(target_os = "linux")]
#[test]
fn the_executable_is_linked_at_a_fixed_address_unless_asked_otherwise() {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_updraft")).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    // `e_type` follows the 16 bytes of `e_ident`, little-endian on the targets updraft builds.
    let e_type = u16::from_le_bytes([bytes[16], bytes[17]]);
    let expected = match option_env!("UPDRAFT_PIE") {
        Some(_) => ET_DYN,
        None => ET_EXEC,
    };
    assert_eq!(
        e_type,
        expected,
        "e_type of {}",
        env!("CARGO_BIN_EXE_updraft")
    );
}
