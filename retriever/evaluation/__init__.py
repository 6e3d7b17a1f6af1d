"""Judging a ranking: labelled queries scored as MRR@10 and R@k, configurations stated as text,
and the paired bootstrap interval between two of them (specs/051 says how a change is judged).
"""
