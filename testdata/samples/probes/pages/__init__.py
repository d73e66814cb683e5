"""The probes sample's pages that only one kind of probe reaches: each is imported when its page is asked
for, so a slim image made from a run that never reached the page lacks its module."""
