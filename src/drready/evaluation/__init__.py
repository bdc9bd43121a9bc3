"""Evaluation (E1): is declared DR potential deliverable and not needlessly small?"""
