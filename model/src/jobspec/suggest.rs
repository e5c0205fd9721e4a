//! "Did you mean ...?" for misspelt keys and enum values.

/// The candidate closest to `typed`, if close enough to be a typo: at most
/// two edits, or a third of the length for long names. Ties go to the
/// earlier candidate, so schemas list common fields first.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = typed.chars().count();
    let limit = (len / 3).max(2);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let d = levenshtein(typed, candidate);
        // Two edits turn any two-letter word into any other: require that
        // something of what was typed survives.
        if d <= limit && d < len.max(candidate.chars().count()) && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance: insertions, deletions and substitutions of characters.
pub(super) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("count", "count"), 0);
        assert_eq!(levenshtein("cuont", "count"), 2);
        assert_eq!(levenshtein("memroy", "memory"), 2);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("drivr", "driver"), 1);
    }

    #[test]
    fn suggests_only_close_names() {
        let fields = [
            "name",
            "count",
            "constraint",
            "restart",
            "reschedule",
            "task",
        ];
        assert_eq!(closest("cuont", fields), Some("count"));
        assert_eq!(closest("tasks", fields), Some("task"));
        assert_eq!(closest("constriant", fields), Some("constraint"));
        assert_eq!(closest("reshcedule", fields), Some("reschedule"));
        assert_eq!(closest("image", fields), None);
        assert_eq!(closest("x", fields), None);
        assert_eq!(
            closest("servce", ["service", "batch", "system"]),
            Some("service")
        );
    }
}
