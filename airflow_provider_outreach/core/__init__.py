"""What every vendor shares: path encoding, connection settings, the retry rule, pacing, transport."""
