// An identity token: a short-lived HS256 JWT whose `sub` is the user id, signed with your
// identity secret. Unlike a signature it expires, and it can carry verified attributes.
//   VOUCH_SECRET=sk_test_… [VOUCH_KEY_ID=key_…] java -cp .:… IdentityToken USER_ID ['{"plan":"pro"}']
//
// With jjwt this is Jwts.builder().subject(id).claim("attributes", attrs)
// .expiration(...).signWith(Keys.hmacShaKeyFor(secretBytes)).compact() — but jjwt refuses
// keys shorter than 32 bytes (imported secrets can be 16) and Maven Central is out of reach
// where these recipes are tested, so this file builds the token with the JDK and Jackson:
// an HS256 JWT is only two pieces of base64url JSON and an HMAC.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class IdentityToken {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Base64.Encoder B64URL = Base64.getUrlEncoder().withoutPadding();

    public static String identityToken(String userId, String secret, JsonNode attributes, String keyId,
                                       long ttlSeconds) throws Exception {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("alg", "HS256");
        header.put("typ", "JWT");
        if (keyId != null && !keyId.isEmpty()) {
            header.put("kid", keyId); // the id of the secret (key_…), so Vouch tries only that one
        }
        long now = System.currentTimeMillis() / 1000;
        Map<String, Object> claims = new LinkedHashMap<>();
        claims.put("sub", userId);
        claims.put("iat", now);
        claims.put("exp", now + ttlSeconds);
        if (attributes != null) {
            claims.put("attributes", attributes);
        }
        String signingInput = B64URL.encodeToString(JSON.writeValueAsBytes(header)) + "."
                + B64URL.encodeToString(JSON.writeValueAsBytes(claims));
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        byte[] signature = mac.doFinal(signingInput.getBytes(StandardCharsets.US_ASCII));
        return signingInput + "." + B64URL.encodeToString(signature);
    }

    public static void main(String[] args) throws Exception {
        String secret = System.getenv("VOUCH_SECRET");
        if (secret == null || secret.isEmpty() || args.length < 1 || args.length > 2) {
            System.err.println("usage: VOUCH_SECRET=sk_… [VOUCH_KEY_ID=key_…] java IdentityToken USER_ID [ATTRIBUTES_JSON]");
            System.exit(2);
        }
        JsonNode attributes = args.length == 2 ? JSON.readTree(args[1]) : null;
        System.out.println(identityToken(args[0], secret, attributes, System.getenv("VOUCH_KEY_ID"), 600));
    }
}
