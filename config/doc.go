// Package config holds Farewell's configuration: the Config struct with documented
// defaults (DefaultConfig), loading from a file, FAREWELL_* environment variables, the
// standard TEMPORAL_* variables and flags (Load), and validation whose errors name the
// key and the bad value (Validate).
package config
