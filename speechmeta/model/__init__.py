"""The acoustic model: conformer encoder with a CTC head, what can be adapted, and CTC."""
