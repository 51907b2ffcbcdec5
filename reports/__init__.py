"""Reports: Allure evidence and labels, redaction, secret scan, the results store and
the regression summary, and the offline HTML report (``stackcheck report``)."""
