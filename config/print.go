package config

import (
	"go.yaml.in/yaml/v3"
)

const redacted = "<redacted>"

// Redacted returns a copy with secrets replaced, fit to print or log.
func (c Config) Redacted() Config {
	if c.Temporal.APIKey != "" {
		c.Temporal.APIKey = redacted
	}
	if c.Cluster.SecretKey != "" {
		c.Cluster.SecretKey = redacted
	}
	if len(c.Cluster.SecretKeys) > 0 {
		keys := make([]string, len(c.Cluster.SecretKeys))
		for i := range keys {
			keys[i] = redacted
		}
		c.Cluster.SecretKeys = keys
	}
	if c.Cluster.EvictSigningKey != "" {
		c.Cluster.EvictSigningKey = redacted
	}
	return c
}

// YAML renders the configuration in the file format Load reads.
func (c Config) YAML() ([]byte, error) {
	return yaml.Marshal(c)
}
