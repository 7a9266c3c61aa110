"""mixlaw: data mixing laws for choosing a pretraining data mixture from small proxy runs."""

__version__ = "0.1.0"
