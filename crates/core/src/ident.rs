//! PostgreSQL identifier rules that decide the physical name of what Django asked for.

/// `NAMEDATALEN - 1`: the longest identifier PostgreSQL keeps, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The name PostgreSQL actually stores for `name`.
///
/// Django quotes every identifier, so case is kept, but PostgreSQL silently truncates names
/// longer than 63 bytes (with a NOTICE), clipping at a character boundary as `pg_mbcliplen`
/// does. A model whose `db_table` is 70 bytes long therefore lives under its first 63 bytes.
pub fn physical_name(name: &str) -> &str {
    if name.len() <= MAX_IDENTIFIER_BYTES {
        return name;
    }
    let mut end = MAX_IDENTIFIER_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_as_they_are() {
        assert_eq!(
            physical_name("Mixed Case \"quoted\""),
            "Mixed Case \"quoted\""
        );
    }

    #[test]
    fn long_names_are_cut_to_63_bytes() {
        let long = "a".repeat(70);
        assert_eq!(physical_name(&long).len(), 63);
    }

    #[test]
    fn truncation_never_splits_a_character() {
        // 62 ASCII bytes then a two-byte character: byte 63 would split it.
        let name = format!("{}é{}", "a".repeat(62), "b".repeat(5));
        assert_eq!(physical_name(&name), "a".repeat(62));
    }
}
