//! Debian's fortune files as a labelled text corpus: each file is a category, each entry a text.
//!
//! A fortune file holds entries separated by lines containing only `%`. The caller reads the
//! files (skipping the `.dat` indexes and the offensive `off/` collections) and passes each as
//! (category, content); the category, usually the file name, is the label.

use crate::features::Sample;
use crate::model::Example;

/// One example per non-blank entry of each file, labelled by the file's category.
pub fn read_fortunes(files: &[(String, String)]) -> Vec<Example> {
    let mut out = Vec::new();
    for (label, content) in files {
        let mut entry = String::new();
        let lines = content.lines().map(|l| l.trim_end_matches('\r'));
        for line in lines.chain(std::iter::once("%")) {
            if line == "%" {
                let text = entry.trim();
                if !text.is_empty() {
                    out.push(Example::new(Sample::new(text), label.clone()));
                }
                entry.clear();
            } else {
                entry.push_str(line);
                entry.push('\n');
            }
        }
    }
    out
}
