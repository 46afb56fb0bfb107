"""The project's HTML pages (batch report, model comparison, monitor summary) on one skeleton."""
