"""``make test`` says in one line when the browser tests were skipped, and why."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_skipped_browser_tests_are_named_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from tests.conftest import pytest_terminal_summary  # noqa: F401\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.browser
        def test_page():
            pytest.skip("/usr/bin/chromium is missing: install Debian's chromium package")

        @pytest.mark.browser
        def test_report():
            pytest.skip("/usr/bin/chromium is missing: install Debian's chromium package")

        def test_other():
            pytest.skip("not a browser test")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-m", "browser or not browser")
    result.assert_outcomes(skipped=3)
    lines = [line for line in result.outlines if line.startswith("browser tests:")]
    assert lines == [
        "browser tests: 2 skipped (/usr/bin/chromium is missing: install Debian's chromium "
        "package); README.md, 'Browser tests', says how to run them"
    ]


def test_no_line_when_no_browser_test_was_skipped(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from tests.conftest import pytest_terminal_summary  # noqa: F401\n")
    pytester.makepyfile("def test_runs():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not [line for line in result.outlines if line.startswith("browser tests:")]
