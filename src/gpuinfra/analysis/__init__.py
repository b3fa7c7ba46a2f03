"""From recorded runs to answers: accounting, invariants, summaries."""
