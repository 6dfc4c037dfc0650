"""The paper's tables regenerated beside its own numbers.

- ``paper.yaml``: the paper's reported numbers as data, keyed like the experiment matrix.
- :mod:`paper_tables.experiments`: config.yaml's experiment matrix expanded for a scale
  (which runs exist, which run answers each row); the workflow uses the same expansion.
- :mod:`paper_tables.build`: measured cells (with the file each came from) beside the paper's.
- :mod:`paper_tables.render`: Markdown, LaTeX and the HTML report, from jinja2 templates.
- :mod:`paper_tables.figures`: seaborn figures of the sweeps (Tables 1, 3, 4).

A cell is a measured value, the paper's number (labelled), or visibly empty.
"""
