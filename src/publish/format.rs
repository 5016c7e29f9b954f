//! The output formats commands offer (`--format`).

/// What `diagnose` prints on stdout when it does not post (or with `json`);
/// also the `md|json` of `route`, `explain`, `apply`, `reset-tags`, `audit`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteFormat {
    /// The note's Markdown.
    Md,
    /// The data the template renders (stable field names).
    Json,
}

/// `--format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Md,
    Json,
    Html,
}
