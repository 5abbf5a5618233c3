// An identity token: a short-lived HS256 JWT whose `sub` is the user id, signed with your
// identity secret. Unlike a signature it expires, and it can carry verified attributes.
//
//	go get github.com/golang-jwt/jwt/v4   (Debian: golang-github-golang-jwt-jwt-dev; v5 has the same calls)
//	VOUCH_SECRET=sk_test_… [VOUCH_KEY_ID=key_…] go run ./identity_token USER_ID ['{"plan":"pro"}']
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// IdentityToken signs an HS256 token for the user, valid for ttl. attributes may be nil;
// keyID (the id of the secret, key_…) may be empty.
func IdentityToken(userID, secret string, attributes map[string]any, keyID string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{"sub": userID, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if attributes != nil {
		claims["attributes"] = attributes
	}
	token := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if keyID != "" {
		token.Header["kid"] = keyID // so Vouch tries only that secret
	}
	return token.SignedString([]byte(secret))
}

func main() {
	secret := os.Getenv("VOUCH_SECRET")
	if secret == "" || len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: VOUCH_SECRET=sk_… [VOUCH_KEY_ID=key_…] identity_token USER_ID [ATTRIBUTES_JSON]")
		os.Exit(2)
	}
	var attributes map[string]any
	if len(os.Args) == 3 {
		if err := json.Unmarshal([]byte(os.Args[2]), &attributes); err != nil {
			fmt.Fprintln(os.Stderr, "invalid attributes:", err)
			os.Exit(1)
		}
	}
	token, err := IdentityToken(os.Args[1], secret, attributes, os.Getenv("VOUCH_KEY_ID"), 10*time.Minute)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(token)
}
