"""Generators for recipes/make_fakes.py: signal-processing copy synthesis and offline TTS.

Development tools only: adfd never imports this package at run time.
"""
