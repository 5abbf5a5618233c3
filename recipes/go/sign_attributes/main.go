// Proof for a user's attributes: HMAC-SHA256 over the RFC 8785 (JCS) canonical form of the
// attributes object, so that key order and spacing do not matter. Send the same object as
// `attributes` and this value as `attributes_signature`.
//
//	VOUCH_SECRET=sk_test_… go run ./sign_attributes '{"plan":"pro","seats":5}'
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
)

// SignAttributes returns the hex HMAC-SHA256 of the canonical form of the attributes JSON.
// json.Marshal is NOT canonical (it sorts keys by UTF-8 and escapes <, >, &): use Canonicalize.
func SignAttributes(attributesJSON []byte, secret string) (string, error) {
	canonical, err := Canonicalize(attributesJSON)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(canonical)
	return hex.EncodeToString(mac.Sum(nil)), nil
}

func main() {
	secret := os.Getenv("VOUCH_SECRET")
	if secret == "" || len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: VOUCH_SECRET=sk_… sign_attributes ATTRIBUTES_JSON")
		os.Exit(2)
	}
	sig, err := SignAttributes([]byte(os.Args[1]), secret)
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalid attributes:", err)
		os.Exit(1)
	}
	fmt.Println(sig)
}
