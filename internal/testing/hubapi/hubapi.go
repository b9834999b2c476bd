// Package hubapi is a test double of Docker Hub's web API (hub.docker.com),
// written from Docker Hub's published API reference rather than from
// imagebadger's client: GET /v2/namespaces/{namespace}/repositories/{repository}
// answers the repository (name, namespace, description, star_count,
// pull_count, last_updated) and GET …/tags?page=N&page_size=M (at most 100,
// 10 by default) answers Docker Hub's paginated_tags: count, next and
// previous as absolute URLs or null, and results with name, digest,
// last_updated, tag_last_pushed, tag_status and images (architecture, os,
// variant, digest, size, status). It serves on 127.0.0.1, counts what it is
// asked, and can answer 429 or a malformed page on demand, so tests and
// benchmarks can hold the client to Docker Hub's shapes and failures.
package hubapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Image is one platform image of a tag, as Docker Hub lists it.
type Image struct {
	Digest, OS, Architecture, Variant string
	Size                              int64
}

// Tag is one tag of a repository.
type Tag struct {
	Name   string
	Digest string
	Images []Image
	// LastUpdated and LastPushed are last_updated and tag_last_pushed.
	LastUpdated, LastPushed time.Time
}

// Repository is what the double serves for namespace/name.
type Repository struct {
	Description string
	Stars       int64
	Pulls       int64
	LastUpdated time.Time
	Tags        []Tag
}

// Server is a running double.
type Server struct {
	*httptest.Server

	mu    sync.Mutex
	repos map[string]*Repository
	// counts of answered requests, by kind.
	repoRequests, tagRequests int
	// tooMany answers the next n requests 429 with Retry-After: 1.
	tooMany int
	// malformed answers page n of a listing (once each) with broken JSON.
	malformed map[int]bool
}

// Start serves an empty double on 127.0.0.1; Close stops it.
func Start() *Server {
	s := &Server{repos: map[string]*Repository{}, malformed: map[int]bool{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Put serves repo as namespace/name (for example "library/alpine").
func (s *Server) Put(path string, repo Repository) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[path] = &repo
}

// TooManyRequests makes the next n requests answer 429 with Retry-After: 1,
// as Docker Hub does past its rate limit.
func (s *Server) TooManyRequests(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tooMany = n
}

// MalformPage makes the next answer for tag page n (from 1) invalid JSON.
func (s *Server) MalformPage(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.malformed[n] = true
}

// Requests returns how many repository and tag-page requests were answered
// (429s and malformed pages included).
func (s *Server) Requests() (repository, tagPages int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repoRequests, s.tagRequests
}

// ResetCounts sets the request counts back to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repoRequests, s.tagRequests = 0, 0
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/namespaces/")
	parts := strings.Split(rest, "/")
	if r.Method != http.MethodGet || !ok || len(parts) < 3 || parts[1] != "repositories" {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "object not found", "errinfo": "{}"})
		return
	}
	path := parts[0] + "/" + parts[2]
	tags := len(parts) == 4 && parts[3] == "tags"
	if len(parts) > 4 || (len(parts) == 4 && !tags) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "object not found"})
		return
	}
	s.mu.Lock()
	if tags {
		s.tagRequests++
	} else {
		s.repoRequests++
	}
	if s.tooMany > 0 {
		s.tooMany--
		s.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.Header().Set("X-RateLimit-Limit", "180")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"message": "Too Many Requests"})
		return
	}
	repo, found := s.repos[path]
	var snapshot Repository
	if found {
		snapshot = *repo
		snapshot.Tags = append([]Tag(nil), repo.Tags...)
	}
	s.mu.Unlock()
	if !found {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "object not found", "errinfo": "{}"})
		return
	}
	if !tags {
		writeJSON(w, http.StatusOK, map[string]any{
			"user": parts[0], "name": parts[2], "namespace": parts[0],
			"repository_type": "image", "status": 1, "status_description": "active",
			"description": snapshot.Description, "is_private": false,
			"star_count": snapshot.Stars, "pull_count": snapshot.Pulls,
			"last_updated": stamp(snapshot.LastUpdated), "date_registered": "2014-06-05T19:28:25.914093Z",
			"full_description": "# " + parts[2], "media_types": []string{"application/vnd.oci.image.index.v1+json"},
		})
		return
	}
	s.tagPage(w, r, snapshot)
}

// tagPage answers one page of a tag listing.
func (s *Server) tagPage(w http.ResponseWriter, r *http.Request, repo Repository) {
	q := r.URL.Query()
	page, size := 1, 10
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	if v, err := strconv.Atoi(q.Get("page_size")); err == nil && v > 0 {
		size = min(v, 100)
	}
	s.mu.Lock()
	broken := s.malformed[page]
	delete(s.malformed, page)
	s.mu.Unlock()
	if broken {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"count": 3, "next": null, "results": [{"name": "x", "digest": `)
		return
	}
	start := (page - 1) * size
	if start > len(repo.Tags) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
		return
	}
	end := min(start+size, len(repo.Tags))
	link := func(p int) any {
		if p < 1 || (p-1)*size >= len(repo.Tags) {
			return nil
		}
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host
		v := u.Query()
		v.Set("page", strconv.Itoa(p))
		v.Set("page_size", strconv.Itoa(size))
		u.RawQuery = v.Encode()
		return u.String()
	}
	results := []map[string]any{}
	for i, t := range repo.Tags[start:end] {
		images := []map[string]any{}
		for _, im := range t.Images {
			var variant any
			if im.Variant != "" {
				variant = im.Variant
			}
			images = append(images, map[string]any{
				"architecture": im.Architecture, "features": "", "variant": variant, "digest": im.Digest,
				"os": im.OS, "os_features": "", "os_version": nil, "size": im.Size, "status": "active",
				"last_pulled": nil, "last_pushed": stamp(t.LastPushed),
			})
		}
		results = append(results, map[string]any{
			"creator": 7, "id": start + i + 1, "images": images, "last_updated": stamp(t.LastUpdated),
			"last_updater": 7, "last_updater_username": "doubled", "name": t.Name, "repository": 1,
			"full_size": 1024, "v2": true, "tag_status": "active", "tag_last_pulled": nil,
			"tag_last_pushed": stamp(t.LastPushed), "media_type": "application/vnd.oci.image.index.v1+json",
			"content_type": "image", "digest": t.Digest,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"count": len(repo.Tags), "next": link(page + 1), "previous": link(page - 1), "results": results,
	})
}

func stamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
