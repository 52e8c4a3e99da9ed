/*
 * auth_fixtures.h - keys and tokens for test_auth.c, made by
 * tests/unit/make_auth_fixtures.py (do not edit; run it again).
 */
#ifndef SSERELAY_AUTH_FIXTURES_H
#define SSERELAY_AUTH_FIXTURES_H

#define TEST_NOW	1767225600L	/* 2026-01-01T00:00:00Z */
#define TEST_FAR	4102444800L	/* 2100-01-01T00:00:00Z */

#define HS_SECRET	"sserelay-unit-test-secret-0123456789"

#define RSA_PUB_PEM \
	"-----BEGIN PUBLIC KEY-----\n" \
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1iHmuGaqjtfb+s2Lwbus\n" \
	"6xftfXRvbP9wepPzsTS78fZ2qtTuSk7xRXm8DMj3UatwUk2gkD8pi2j3hEKlcgJ1\n" \
	"rnQMDb0BPjtb2YyPRjHntn/qqxxTREzffQLGdsH/cbqsnOTjWiByMh+yb7vhkmM+\n" \
	"jln1dzOIDfsvHanB6S2wOnmjBWYwnYnkzm9p8hBj83yLl/BvGb0vI8rQuemZgCJk\n" \
	"kwUyrGgTqL6cQFDWrME4Z08vMzdl9cFN/XaRoNJfXWgjndmmeorBmKW7LDL4ok/9\n" \
	"RWUCnlBS5OBog3nzsC/5vRXY2KB0ajL7H34s1s8cEcbTCRotkkD3IsC3U4C3qsJW\n" \
	"AwIDAQAB\n" \
	"-----END PUBLIC KEY-----\n"

#define EC_PUB_PEM \
	"-----BEGIN PUBLIC KEY-----\n" \
	"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAElH7nMelrK3d5ukMPr1oZPpeIktHz\n" \
	"L+scaKtoqSxWdBJw7/snAMth2r9ZwrhQXvFmoWQ/szwLkhrH2mBckLdwLA==\n" \
	"-----END PUBLIC KEY-----\n"

/* HS256, sub alice, exp 2100, uploads u7 and team-4* */
#define HS_OK \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwic3NlcmVsYXkiOnsidXBsb2FkcyI6WyJ1NyIsInRlYW0tNCo" \
	"iXX19.OxfaOA1re3BTTzupt6O9HQUxhhuR-aHQdpPslatlt4E"

/* HS256, sub alice, exp 2100, no sserelay claim */
#define HS_NOCLAIM \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMH0.7ROHzBzZPC8w4lfDuADTFLgE_fEvG9Tq7jVmQ7bTA8E"

/* HS256, sub alice, exp 2100, uploads * */
#define HS_STAR \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwic3NlcmVsYXkiOnsidXBsb2FkcyI6WyIqIl19fQ.-GSoJR1r" \
	"RnD4o5JZGsHa7qvqMVD5VK11NOAxMXk7hG8"

/* HS256, sub alice, exp 2100, app: uploads u7 */
#define HS_APPCLAIM \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwiYXBwIjp7InVwbG9hZHMiOlsidTciXX19.BnKCNjNOfKgOGg" \
	"__84_TZcNqV3lzWaSgAOGdk_pxXKw"

/* HS256, sub alice, exp 2100, uploads u7, upload u9 (not the upload kind's list), room general and team-* */
#define HS_KINDS \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwic3NlcmVsYXkiOnsidXBsb2FkcyI6WyJ1NyJdLCJ1cGxvYWQ" \
	"iOlsidTkiXSwicm9vbSI6WyJnZW5lcmFsIiwidGVhbS0qIl19fQ.oZxITugd6YVS" \
	"6u-pYPH2tZKUO-d0a7imx7fb53ScdCo"

/* HS256, sserelay.uploads is a string */
#define HS_UPLOADS_NOT_ARRAY \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwic3NlcmVsYXkiOnsidXBsb2FkcyI6InU3In19.Et5A6ANj0M" \
	"r5mPWD-3QNilk0vaZ5LbDMNVX27bTdnhk"

/* HS256, sub alice, exp = NOW */
#define HS_EXP_NOW \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6MTc2NzIyNTYwMH0.hpYV7-cAYDNZpJXXtgG0eCJaHBg7rp0-ifGBMYmuXEo"

/* HS256, sub alice, exp 2100, nbf = NOW + 100 */
#define HS_NBF \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwibmJmIjoxNzY3MjI1NzAwfQ.mBQs8BhcVFX66eVojKd654Zy" \
	"kYK2jRPjMJAMNjXdAWU"

/* HS256, sub alice, no exp */
#define HS_NOEXP \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.yqIgvc" \
	"CyZq5zwsehnApPyUZ_YxP-eNYkZ1I7wiegkYI"

/* HS256, sub alice, exp 0 */
#define HS_EXP_ZERO \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6MH0.v1yrRgbzDzfd1PNGrV1YQbLWPLor024npAwBu3fGxy8"

/* HS256, sub alice, exp "4102444800" (a string) */
#define HS_EXP_STRING \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6IjQxMDI0NDQ4MDAifQ.Achw7bSLtwtUKHU_5WiJTROs-AFrRyqDnRXPKfejumo"

/* HS256, sub alice, exp 2100, iss https://app.example */
#define HS_ISS \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwiaXNzIjoiaHR0cHM6Ly9hcHAuZXhhbXBsZSJ9.veQXqs0M-U" \
	"N0zp5mOKzzKjJKeMKZ8Qpe_rt8JOdc9BQ"

/* HS256, sub alice, exp 2100, aud sserelay */
#define HS_AUD_STR \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwiYXVkIjoic3NlcmVsYXkifQ.7X3p8PW2YcAV_-8JYqZaRiCx" \
	"6vplCE_YSNjG6dFmSpI"

/* HS256, sub alice, exp 2100, aud [other, sserelay] */
#define HS_AUD_ARR \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwiYXVkIjpbIm90aGVyIiwic3NlcmVsYXkiXX0.OVafPfYD2Bm" \
	"C6D8OmzLQab7mZfuUefd7mGjFOSJqjMg"

/* HS256, sub alice, exp 2100, aud [other] */
#define HS_AUD_OTHER \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwiYXVkIjpbIm90aGVyIl19.msSfpx9Bd3hI7lLmM07N3T2jPU" \
	"XR-Wx4rSg25Ufq6lE"

/* HS256, sub alice, exp 2100, aud 7 */
#define HS_AUD_NUM \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwiYXVkIjo3fQ.pz3mVwczIelHDE97zvCZMU4KHBrQ36LV5oEn" \
	"mozvWHQ"

/* HS256, exp 2100, no sub */
#define HS_NOSUB \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjQxMDI0NDQ4MDB9.qI" \
	"AlAAzAwPuzehcYmiGS3U9k4SzQH_I6gSh1-0lfvZs"

/* HS256 as HS_OK, signed with another secret */
#define HS_WRONG_SECRET \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwic3NlcmVsYXkiOnsidXBsb2FkcyI6WyJ1NyIsInRlYW0tNCo" \
	"iXX19.caYS-RHAyGnDxkvV7rNGKd8mhSm5IdDjqzN6h5n4BJc"

/* HS384 as HS_OK, same secret */
#define HS384_OK \
	"eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwic3NlcmVsYXkiOnsidXBsb2FkcyI6WyJ1NyIsInRlYW0tNCo" \
	"iXX19.cUtJIe_W3ED0Xhzrq-0Owz76bAcJMA91uOUmdlvzzMJJyyrEQeCeo7hCj0" \
	"J8KCiV"

/* alg none as HS_OK, no signature */
#define NONE \
	"eyJhbGciOiAibm9uZSIsICJ0eXAiOiAiSldUIn0.eyJzdWIiOiAiYWxpY2UiLCAi" \
	"ZXhwIjogNDEwMjQ0NDgwMCwgInNzZXJlbGF5IjogeyJ1cGxvYWRzIjogWyJ1NyIs" \
	"ICJ0ZWFtLTQqIl19fQ."

/* RS256 as HS_OK */
#define RS_OK \
	"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwic3NlcmVsYXkiOnsidXBsb2FkcyI6WyJ1NyIsInRlYW0tNCo" \
	"iXX19.DSV66uwdK-zsy2cvEqw0FyrHg-97o7DkYFOj6WJzj2lCX8QFp1PiMqhAZz" \
	"353iwURNMxcNGSGS7Tq7eKkEuodDPKLUqV5iW2NUu5rUVGreKi0-xvHKg9RVvB5v" \
	"iMNCl59YXpi7u12JJb07HcR59WDdJwZfplyPea6r43mfVEJ0nq0lQe9clEDC4BGY" \
	"91k3vT16BEmg2S1SG8Ogq2EvEXhFQZpK6XGbThO1KiiOL6XTS5VYmYbnZlZF94-x" \
	"bl3sK1zWVDjvEbADwcv8EF4DlvH40kUvZozEWceECblxHqeNykPVlnNFOVT3sdkA" \
	"qsMo0xKrVMdMSNk0S36Bv162QP7w"

/* RS256 as HS_OK, signed with another RSA key */
#define RS_OTHER_KEY \
	"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwic3NlcmVsYXkiOnsidXBsb2FkcyI6WyJ1NyIsInRlYW0tNCo" \
	"iXX19.ZQvWfqPzylnVTalcE5DutAUSMkS6j81FlDxiedZOcQisNzl1qPZMxy8eI8" \
	"29ZOpg2DZmHv563peP7OP5KkfciN_B0IierdD4tyEqfSqjnkDuuHK6ofMCSz9yzX" \
	"sK8kFupHr1evs1ni9UqjIKROJIb1jK42-8Fi0I9kCGSCHRT6vcry1xxlCslU3UWc" \
	"6nwX0nOzrWGaK1v5IE0yDoVNJ7FdnfJiZI9N0MmBNQluWnz5L-kUpmaay2iGLZQe" \
	"9WF9AjoJhMQji16PrIXjBufuW61mB9FnmLLir-G87r2fqQCIhkH7jnZOlEgcv7Wn" \
	"b_Thp4xtq-K-cqvWU-iOKU3BARzA"

/* HS256 as HS_OK, the RSA public key PEM as secret */
#define HS_RSA_PUB \
	"eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAiYWxpY2UiLCA" \
	"iZXhwIjogNDEwMjQ0NDgwMCwgInNzZXJlbGF5IjogeyJ1cGxvYWRzIjogWyJ1NyI" \
	"sICJ0ZWFtLTQqIl19fQ.gNTVI3xHmUH-G054jgBNJXdwT0zE-KsEpne-zWK5lSs"

/* ES256 as HS_OK */
#define ES_OK \
	"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI" \
	"6NDEwMjQ0NDgwMCwic3NlcmVsYXkiOnsidXBsb2FkcyI6WyJ1NyIsInRlYW0tNCo" \
	"iXX19.ahpdS7JIGck0wdu8yLXAGuhTE-X6VcIOaJKxDLSJG5qL2ozuvOXvzdgIMl" \
	"e_h-oHmrq9_PknoIP9ecqTIB-GYQ"

#endif
