"""Tests of the corral worker runtime.

Run from the repository root:

    python3 -m unittest discover -s python/tests -t python

Most tests play the master: they start a real worker through boot.py,
send it frames over socketpairs and check the frames that come back.
"""
