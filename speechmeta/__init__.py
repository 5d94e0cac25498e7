"""speechmeta: few-shot speaker adaptation of CTC speech recognition by meta-learning across speakers."""

__version__ = "0.1.0"
