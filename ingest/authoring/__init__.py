"""Writing specs: line-level frontmatter edits, updates with transitions, new specs from
templates, splits into sub-spec files, and the write requests every door builds."""
