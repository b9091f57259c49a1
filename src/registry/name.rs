//! Folder names for model ids.
//!
//! Model ids come from the logs, so they can hold anything: `/`, `..`, a
//! leading dot, spaces, non-ASCII text. An id is used as a folder name as is
//! only when it is safe (`[A-Za-z0-9._-]`, not `.` or `..`, no leading dot);
//! anything else is encoded reversibly, percent-style, byte by byte over its
//! UTF-8 form. `%` is never safe, so an encoded name can never collide with a
//! safe one, and a folder name decodes back to exactly one id.

/// Whether `id` can be a folder name as it is.
pub fn is_safe(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The folder name of a model id; `None` for the empty id, which has none.
pub fn encode(id: &str) -> Option<String> {
    if id.is_empty() {
        return None;
    }
    if is_safe(id) {
        return Some(id.to_string());
    }
    let mut out = String::with_capacity(id.len() * 3);
    for (i, b) in id.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-') || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

/// The model id of a folder name, or `None` when the name is not one that
/// [`encode`] produces (a hidden folder, a stray file, a bad escape).
pub fn decode(name: &str) -> Option<String> {
    if is_safe(name) {
        return Some(name.to_string());
    }
    if name.is_empty() || name.starts_with('.') || !name.contains('%') {
        return None;
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = name.get(i + 1..i + 3)?;
            if !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
            {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let id = String::from_utf8(out).ok()?;
    // Only the canonical spelling decodes, so one id has one folder.
    (encode(&id).as_deref() == Some(name)).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_ids_are_kept() {
        for id in ["default", "churn-model_v2", "a.b", "A9"] {
            assert_eq!(encode(id).as_deref(), Some(id));
            assert_eq!(decode(id).as_deref(), Some(id));
        }
    }

    #[test]
    fn unsafe_ids_are_encoded_reversibly() {
        let cases = [
            (".", "%2E"),
            ("..", "%2E."),
            (".hidden", "%2Ehidden"),
            ("a/b", "a%2Fb"),
            ("../etc", "%2E.%2Fetc"),
            ("fraud model", "fraud%20model"),
            ("modèle", "mod%C3%A8le"),
            ("50%", "50%25"),
        ];
        for (id, folder) in cases {
            assert_eq!(encode(id).as_deref(), Some(folder), "{id}");
            assert_eq!(decode(folder).as_deref(), Some(id), "{folder}");
            assert!(!folder.contains('/') && folder != "." && folder != "..");
        }
    }

    #[test]
    fn non_canonical_names_are_not_models() {
        for name in [".staging", "a%2f", "a%2", "%zz", "a%41", ""] {
            assert_eq!(decode(name), None, "{name}");
        }
        assert_eq!(encode(""), None);
    }
}
