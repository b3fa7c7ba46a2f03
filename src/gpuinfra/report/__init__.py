"""Self-contained HTML reports: plotly figures (JS inlined once), jinja2 templates, computed text."""
