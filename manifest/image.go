package manifest

import "time"

// ImageHealthcheck is an image's HEALTHCHECK (Docker's form: ["CMD",
// args...], ["CMD-SHELL", command] or ["NONE"]) as a container's health
// check, with the defaults of a manifest's for what it leaves zero; nil
// for NONE, an empty test or a form Docker does not run either.
func ImageHealthcheck(test []string, interval, timeout, startPeriod, startInterval time.Duration, retries int) *Healthcheck {
	if len(test) < 2 {
		return nil
	}
	h := &Healthcheck{
		Interval: interval, Timeout: timeout, Retries: retries,
		StartPeriod: startPeriod, StartInterval: startInterval,
	}
	switch test[0] {
	case "CMD":
		h.Test = append([]string{}, test[1:]...)
	case "CMD-SHELL":
		h.Test = []string{"/bin/sh", "-c", test[1]}
	default:
		return nil
	}
	if h.Interval <= 0 {
		h.Interval = defaultHealthInterval
	}
	if h.Timeout <= 0 {
		h.Timeout = defaultHealthTimeout
	}
	if h.Retries <= 0 {
		h.Retries = defaultHealthRetries
	}
	if h.StartInterval <= 0 {
		h.StartInterval = defaultHealthStartInterval
	}
	return h
}
