//! What a person is told about an option they got wrong: the value as they
//! wrote it, never a JS or Rust debug form.

/// What a whole-number option holds: a number, text (the playground page
/// forwards its URL's options as written), or another kind of value (its
/// `typeof`).
pub enum Given<'a> {
    Number(f64),
    Text(&'a str),
    Other(&'a str),
}

/// `workers`, `maxQueue`, …: a whole number, 0 or more.
pub fn whole_number(key: &str, given: Given) -> Result<u32, String> {
    let number = match given {
        Given::Number(n) => Some(n),
        Given::Text(text) if !text.trim().is_empty() => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    match number {
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(n as u32),
        _ => {
            let shown = match given {
                Given::Number(n) if n.is_nan() => "a value that is not a number".to_string(),
                Given::Number(n) => n.to_string(),
                Given::Text(text) => format!("\"{text}\""),
                Given::Other(kind) => format!("a value of type {kind}"),
            };
            Err(format!("option `{key}` must be a whole number (0 or more), got {shown}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_numeric_text_are_read() {
        assert_eq!(whole_number("workers", Given::Number(3.0)), Ok(3));
        assert_eq!(whole_number("workers", Given::Text("4")), Ok(4));
        assert_eq!(whole_number("maxQueue", Given::Text(" 0 ")), Ok(0));
    }

    #[test]
    fn a_bad_value_is_shown_as_written() {
        let message = whole_number("workers", Given::Text("abc")).unwrap_err();
        assert_eq!(message, "option `workers` must be a whole number (0 or more), got \"abc\"");
        assert!(whole_number("workers", Given::Text("")).unwrap_err().ends_with("got \"\""));
        assert!(whole_number("workers", Given::Text("1.5")).unwrap_err().ends_with("got \"1.5\""));
        assert!(whole_number("workers", Given::Number(-1.0)).unwrap_err().ends_with("got -1"));
        let nan = whole_number("workers", Given::Number(f64::NAN)).unwrap_err();
        assert!(nan.ends_with("got a value that is not a number"), "{nan}");
        assert!(!nan.contains("NaN") && !nan.contains("JsValue"));
        assert!(whole_number("workers", Given::Other("boolean")).unwrap_err().ends_with("a value of type boolean"));
    }
}
