//! The one Markdown table writer of the page.

use super::Page;
use super::text::cell;

impl Page<'_> {
    pub(super) fn table(&mut self, head: &[&str], rows: &[Vec<String>]) {
        self.blank();
        self.line(&format!("| {} |", head.join(" | ")));
        self.line(&format!("|{}", " --- |".repeat(head.len())));
        for row in rows {
            let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
            self.line(&format!("| {} |", cells.join(" | ")));
        }
        self.blank();
    }
}
