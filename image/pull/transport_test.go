package pull

import (
	"net/http"
	"testing"
)

func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"localhost:5000", true},
		{"127.0.0.1:5000", true},
		{"127.8.9.10", true},
		{"10.1.2.3:5000", false},
		{"192.168.1.1", false},
		{"registry.example", false},
	} {
		sent := false
		rt := httpsOnly{roundTripFunc(func(*http.Request) (*http.Response, error) {
			sent = true
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		})}
		req, _ := http.NewRequest(http.MethodGet, "http://"+tc.host+"/v2/", nil)
		_, err := rt.RoundTrip(req)
		if (err == nil) != tc.ok || sent != tc.ok {
			t.Errorf("plain HTTP to %s: err %v, sent %v; want allowed %v", tc.host, err, sent, tc.ok)
		}
		req, _ = http.NewRequest(http.MethodGet, "https://"+tc.host+"/v2/", nil)
		if _, err := rt.RoundTrip(req); err != nil {
			t.Errorf("HTTPS to %s: %v", tc.host, err)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
