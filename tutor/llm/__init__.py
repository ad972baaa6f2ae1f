"""LLM backends behind one streaming interface; see `base.py`."""
from tutor.llm.base import LLM, Delta, GenParams, LLMError, NoLogprobs, make_llm

__all__ = ["LLM", "Delta", "GenParams", "LLMError", "NoLogprobs", "make_llm"]
