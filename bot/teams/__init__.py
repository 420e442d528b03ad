"""The Teams edge: the only package that imports botbuilder (swapping to the Teams SDK is a change here only)."""
