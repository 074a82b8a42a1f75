//! AFL target: see [`updraft_fuzz::template`]. The renderer and the context are built once,
//! as a worker builds them once per task.

use std::panic::AssertUnwindSafe;

fn main() {
    // A panic aborts the process under AFL, so no state outlives it. No panic hook of afl's:
    // the renderer turns a panic inside minijinja into a template error, and afl's own hook
    // would abort first; a panic that escapes the renderer still aborts (afl catches it).
    let shared = AssertUnwindSafe((
        updraft_template::Renderer::new(),
        updraft_fuzz::template_context(),
    ));
    afl::fuzz_nohook!(|data: &[u8]| {
        let (renderer, context) = &*shared;
        updraft_fuzz::template(renderer, context, data);
    });
}
