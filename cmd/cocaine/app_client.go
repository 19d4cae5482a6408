package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const defaultAPI = "http://127.0.0.1:8081" // the admin listener of `cocaine dev` and the gateway

// tokenFile is where `cocaine dev` (run from the same folder) keeps its
// generated token.
const tokenFile = "var/token"

type commonOpts struct {
	api, token string
	json       bool
	timeout    time.Duration
}

func commonFlags(fs *flag.FlagSet) *commonOpts {
	o := &commonOpts{}
	fs.StringVar(&o.api, "api", envOr("COCAINE_API", defaultAPI), "REST API base URL (env COCAINE_API)")
	fs.StringVar(&o.token, "token", "", "bearer token for writes (default: env COCAINE_TOKEN, else ./"+tokenFile+")")
	fs.BoolVar(&o.json, "json", false, "print JSON")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a request after this long (not on logs -f)")
	return o
}

func (o *commonOpts) client() (*apiClient, error) {
	u, err := url.Parse(strings.TrimRight(o.api, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q: want http://HOST:PORT", o.api)
	}
	token := o.token
	if token == "" {
		token = strings.TrimSpace(os.Getenv(tokenEnv))
	}
	if token == "" {
		token, _ = readToken(tokenFile)
	}
	return &apiClient{base: u.String() + "/api/v1", token: token, json: o.json, timeout: o.timeout, hc: &http.Client{}}, nil
}

// apiClient calls the REST API for one command.
type apiClient struct {
	cmd     string
	base    string
	token   string
	json    bool
	timeout time.Duration
	hc      *http.Client
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Message string `json:"error"`
	Details []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"details"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

// call sends a request and returns the response of a 2xx answer, whose
// body the caller closes; any other answer is an *apiError.
func (c *apiClient) call(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the API at %s (is `cocaine dev` or the gateway running? --api, COCAINE_API): %w", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &apiError{Status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(raw, e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(raw))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	return nil, e
}

// getJSON calls and decodes a JSON answer into v.
func (c *apiClient) getJSON(method, path string, body io.Reader, contentType string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	resp, err := c.call(ctx, method, path, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	return nil
}

// fail prints err and returns the exit code it means. upload says whether
// a 400 is about the package (exit 4) rather than the request.
func (c *apiClient) fail(err error, upload bool) int {
	var e *apiError
	if !errors.As(err, &e) {
		fmt.Fprintf(os.Stderr, "cocaine app %s: %v\n", c.cmd, err)
		return exitFailure
	}
	fmt.Fprintf(os.Stderr, "cocaine app %s: %s\n", c.cmd, e.Message)
	for _, d := range e.Details {
		if d.Path != "" {
			fmt.Fprintf(os.Stderr, "  %s: %s\n", d.Path, d.Message)
		} else if d.Message != e.Message {
			fmt.Fprintf(os.Stderr, "  %s\n", d.Message)
		}
	}
	switch {
	case e.Status == http.StatusNotFound:
		return exitNotFound
	case e.Status == http.StatusUnprocessableEntity, e.Status == http.StatusRequestEntityTooLarge,
		upload && e.Status == http.StatusBadRequest:
		return exitInvalid
	case e.Status == http.StatusUnauthorized:
		fmt.Fprintf(os.Stderr, "  (no token: pass --token, set %s, or run from the folder holding %s)\n", tokenEnv, tokenFile)
	case e.Status == http.StatusForbidden:
		fmt.Fprintf(os.Stderr, "  (the token sent is not one the server accepts)\n")
	}
	return exitFailure
}

// printJSON prints v indented, for --json.
func printJSON(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func appPath(name string, rest ...string) string {
	p := "/apps/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}
