"""Venue adapters: ParameterChange → Call, and (later) chain reads of current parameters."""
