package image

import (
	"encoding/json"
	"fmt"
	"time"
)

// Config is what of an image's config a container takes as its defaults.
type Config struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"workdir,omitempty"`
	User       string   `json:"user,omitempty"`
	// Healthcheck is the image's own check, nil when it has none.
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`
	// OS and Architecture are the platform the image was built for.
	OS           string `json:"os,omitempty"`
	Architecture string `json:"architecture,omitempty"`
}

// Healthcheck is an image's HEALTHCHECK, as Docker records it: Test is
// ["NONE"], ["CMD", args...] or ["CMD-SHELL", command]; a zero duration
// means the default.
type Healthcheck struct {
	Test          []string      `json:"test,omitempty"`
	Interval      time.Duration `json:"interval,omitempty"`
	Timeout       time.Duration `json:"timeout,omitempty"`
	StartPeriod   time.Duration `json:"start_period,omitempty"`
	StartInterval time.Duration `json:"start_interval,omitempty"`
	Retries       int           `json:"retries,omitempty"`
}

// configFile is the part of the OCI (and Docker) image config read here.
// The health check is Docker's extension; durations are nanoseconds.
type configFile struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		Entrypoint  []string `json:"Entrypoint"`
		Cmd         []string `json:"Cmd"`
		Env         []string `json:"Env"`
		WorkingDir  string   `json:"WorkingDir"`
		User        string   `json:"User"`
		Healthcheck *struct {
			Test          []string      `json:"Test"`
			Interval      time.Duration `json:"Interval"`
			Timeout       time.Duration `json:"Timeout"`
			StartPeriod   time.Duration `json:"StartPeriod"`
			StartInterval time.Duration `json:"StartInterval"`
			Retries       int           `json:"Retries"`
		} `json:"Healthcheck"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func decodeConfig(raw []byte) (configFile, error) {
	var cf configFile
	if err := json.Unmarshal(raw, &cf); err != nil {
		return cf, fmt.Errorf("image config: %w", err)
	}
	return cf, nil
}

// ReadConfig reads an image's config: what a container takes of it, and
// the diff IDs of its layers, bottom first.
func ReadConfig(raw []byte) (Config, []string, error) {
	cf, err := decodeConfig(raw)
	if err != nil {
		return Config{}, nil, err
	}
	return configOf(cf), cf.RootFS.DiffIDs, nil
}

func parseConfig(raw []byte) (Config, error) {
	cf, err := decodeConfig(raw)
	if err != nil {
		return Config{}, err
	}
	return configOf(cf), nil
}

func configOf(cf configFile) Config {
	c := Config{
		Entrypoint:   cf.Config.Entrypoint,
		Cmd:          cf.Config.Cmd,
		Env:          cf.Config.Env,
		WorkingDir:   cf.Config.WorkingDir,
		User:         cf.Config.User,
		OS:           cf.OS,
		Architecture: cf.Architecture,
	}
	if h := cf.Config.Healthcheck; h != nil {
		c.Healthcheck = &Healthcheck{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries,
		}
	}
	return c
}
