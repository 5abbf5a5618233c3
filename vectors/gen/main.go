// Vouch test vectors, computed with Go's crypto/hmac (standard library only).
//
//	GO111MODULE=off go run vectors/gen/main.go [inputs.json] [vectors.json]
//
// Signatures come from inputs.json. For attributes and tokens this runtime
// takes the canonical JSON and the token signing input ("header.payload")
// from vectors.json and computes the MACs itself.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

type named struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type inputsFile struct {
	Secrets  []named `json:"secrets"`
	Messages []named `json:"messages"`
}

type vectorsFile struct {
	Attributes []struct {
		ID         string `json:"id"`
		SecretName string `json:"secret_name"`
		Canonical  string `json:"canonical"`
	} `json:"attributes"`
	Tokens []struct {
		ID         string `json:"id"`
		SecretName string `json:"secret_name"`
		Token      string `json:"token"`
	} `json:"tokens"`
}

type macs struct {
	ID        string `json:"id"`
	Hex       string `json:"hex"`
	Base64    string `json:"base64"`
	Base64URL string `json:"base64url"`
}

type token struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

type output struct {
	Runtime    string  `json:"runtime"`
	Signatures []macs  `json:"signatures"`
	Attributes []macs  `json:"attributes"`
	Tokens     []token `json:"tokens"`
}

func mac(key, message string) []byte {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(message))
	return h.Sum(nil)
}

func encodings(id string, digest []byte) macs {
	return macs{
		ID:        id,
		Hex:       hex.EncodeToString(digest),
		Base64:    base64.StdEncoding.EncodeToString(digest),
		Base64URL: base64.RawURLEncoding.EncodeToString(digest),
	}
}

func load(path string, into interface{}) {
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, into)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
		os.Exit(1)
	}
}

func main() {
	dir := filepath.Join(filepath.Dir(os.Args[0]), "..")
	if _, file, _, ok := runtime.Caller(0); ok {
		dir = filepath.Join(filepath.Dir(file), "..")
	}
	inputsPath, vectorsPath := filepath.Join(dir, "inputs.json"), filepath.Join(dir, "vectors.json")
	if len(os.Args) > 1 {
		inputsPath = os.Args[1]
	}
	if len(os.Args) > 2 {
		vectorsPath = os.Args[2]
	}
	var in inputsFile
	var vec vectorsFile
	load(inputsPath, &in)
	load(vectorsPath, &vec)

	secrets := map[string]string{}
	for _, s := range in.Secrets {
		secrets[s.Name] = s.Value
	}
	out := output{Runtime: "go " + runtime.Version()}
	for _, s := range in.Secrets {
		for _, m := range in.Messages {
			out.Signatures = append(out.Signatures, encodings(s.Name+"/"+m.Name, mac(s.Value, m.Value)))
		}
	}
	for _, a := range vec.Attributes {
		out.Attributes = append(out.Attributes, encodings(a.ID, mac(secrets[a.SecretName], a.Canonical)))
	}
	for _, t := range vec.Tokens {
		parts := strings.Split(t.Token, ".")
		signingInput := parts[0] + "." + parts[1]
		signature := base64.RawURLEncoding.EncodeToString(mac(secrets[t.SecretName], signingInput))
		out.Tokens = append(out.Tokens, token{ID: t.ID, Token: signingInput + "." + signature})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
