"""Which spec governs a piece of work (a commit, a session, a branch): explicit references,
the files it touched, and text match through search, combined into ranked specs with a
confidence and the evidence for it, or an abstention (specs/085)."""
