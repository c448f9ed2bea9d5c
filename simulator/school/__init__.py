"""The school: the only party that knows who a student is (roster, guardian settings, term keys)."""
