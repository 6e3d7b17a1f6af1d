"""The write path of specmem, in three layers over the shared settings, errors and atomic files:
`ingest.specs` (the spec model and reading a specs dir), `ingest.authoring` (writing specs) and
`ingest.index` (building the index). Never imports `retriever`."""
