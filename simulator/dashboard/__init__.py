"""The operator's live web page over the vendor backend's store (docs/dashboard.md)."""
