"""Local stand-ins for third-party APIs, driven through the real SDKs."""
