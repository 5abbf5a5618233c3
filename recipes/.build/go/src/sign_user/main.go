// Proof that a user is who your backend says: HMAC-SHA256 of the user id, keyed with
// your Vouch identity secret, as 64 lowercase hex characters.
// Run it on your server, never in the browser:
//
//	VOUCH_SECRET=sk_test_… go run ./sign_user USER_ID
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
)

// SignUserID returns the hex HMAC-SHA256 of the user id's UTF-8 bytes, keyed with the
// secret exactly as shown by Vouch.
func SignUserID(userID, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(userID))
	return hex.EncodeToString(mac.Sum(nil))
}

func main() {
	secret := os.Getenv("VOUCH_SECRET")
	if secret == "" || len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: VOUCH_SECRET=sk_… sign_user USER_ID")
		os.Exit(2)
	}
	fmt.Println(SignUserID(os.Args[1], secret))
}
