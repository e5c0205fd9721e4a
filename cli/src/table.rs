//! Plain-text tables and `Key = value` blocks, the two shapes Nomad's CLI
//! prints. Columns are padded by characters (not bytes) so ids, names and
//! arrows line up; the last column is never padded, so no line ends in
//! spaces that would make snapshots fragile.

/// A table with a header row, left-aligned unless a column is marked right.
pub struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        let headers: Vec<String> = headers.into_iter().map(Into::into).collect();
        let right = vec![false; headers.len()];
        Self {
            headers,
            right,
            rows: Vec::new(),
        }
    }

    /// Numbers read better right-aligned.
    #[must_use]
    pub fn right(mut self, columns: &[usize]) -> Self {
        for &c in columns {
            if let Some(r) = self.right.get_mut(c) {
                *r = true;
            }
        }
        self
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                let last = i + 1 == row.len();
                if self.right.get(i).copied().unwrap_or(false) {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if !last {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `Key = value` lines with the `=` aligned, as `nomad job status ID` prints
/// its header. An empty value prints as `<none>` so the line is not
/// mistaken for a formatting slip.
pub fn key_values<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.as_ref().chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let (k, v) = (k.as_ref(), v.as_ref());
        let pad = width - k.chars().count();
        out.push_str(k);
        out.extend(std::iter::repeat_n(' ', pad));
        out.push_str(" = ");
        out.push_str(if v.is_empty() { "<none>" } else { v });
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_by_characters_and_trims_the_last_column() {
        let mut t = Table::new(["ID", "SCORE", "NOTE"]).right(&[1]);
        t.row(["é1", "0.5", ""]);
        t.row(["abcd", "10.25", "picked"]);
        assert_eq!(
            t.render(),
            "ID    SCORE  NOTE\né1      0.5\nabcd  10.25  picked\n"
        );
    }

    #[test]
    fn key_values_align_and_mark_empty() {
        assert_eq!(
            key_values(&[("ID", "web"), ("Datacenters", "")]),
            "ID          = web\nDatacenters = <none>\n"
        );
    }
}
