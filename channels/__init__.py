"""Channel adapters: each turns its platform into the normalized messages and back."""
