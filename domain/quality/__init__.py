"""The onboarding data-quality report's rules, one room each; pure functions of values.

- :mod:`domain.quality.snapshot`: the input, active students' contact data as columns.
- :mod:`domain.quality.metrics`: per-row facts derived from a snapshot, the report's figures
  (each defined there, once) and the per-program and per-advisor breakdowns.
- :mod:`domain.quality.alerts`: thresholds (into the expectation suites), the alert rule and
  the comparison with earlier runs (changes, trend).
- :mod:`domain.quality.followups`: the advisors' follow-up rows, one per problem of a student.
- :mod:`domain.quality.outcomes`: an expectation's result in the report's words.
- :mod:`domain.quality.labels`: the words the report uses for figures and reasons.
- :mod:`domain.quality.render`: ``summary.md`` and the markdown headline table.
- :mod:`domain.quality.chart`: the reachability chart (SVG).
- :mod:`domain.quality.html`: the self-contained report page (``index.html``), styled by
  :mod:`domain.quality.style`.
"""
