"""The spec model and how a specs dir is read: frontmatter, sections, the store (discovery and
strict references), the graph of links, validation, and a LeanSpec project's settings.

The bottom layer of `ingest`: it imports neither authoring nor the index build."""
