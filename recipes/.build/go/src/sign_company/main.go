// Proof for a company (group): the same HMAC-SHA256 as for a user, over the company id.
//
//	VOUCH_SECRET=sk_test_… go run ./sign_company COMPANY_ID
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
)

// SignCompanyID returns the hex HMAC-SHA256 of the company id, keyed with the secret.
func SignCompanyID(companyID, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(companyID))
	return hex.EncodeToString(mac.Sum(nil))
}

func main() {
	secret := os.Getenv("VOUCH_SECRET")
	if secret == "" || len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: VOUCH_SECRET=sk_… sign_company COMPANY_ID")
		os.Exit(2)
	}
	fmt.Println(SignCompanyID(os.Args[1], secret))
}
