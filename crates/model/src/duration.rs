//! Durations as users write them: `30s`, `5m`, `1h30m`, `2d`, or a plain number of seconds.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: expected a number of seconds or a form like 30s, 5m, 1h30m, 2d"
)]
pub struct DurationError {
    pub input: String,
}

pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        input: input.to_string(),
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| err());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(err()),
        };
        let n: u64 = number.parse().map_err(|_| err())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(err());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_user_forms() {
        let cases = [
            ("30s", 30),
            ("5m", 300),
            ("1h30m", 5400),
            ("2d", 172_800),
            ("45", 45),
            ("1h", 3600),
        ];
        for (input, secs) in cases {
            assert_eq!(
                parse_duration(input),
                Ok(Duration::from_secs(secs)),
                "{input}"
            );
        }
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn rejects_garbage() {
        for input in ["", "m", "5x", "1h30", "-3", "h5"] {
            assert!(parse_duration(input).is_err(), "{input}");
        }
    }
}
