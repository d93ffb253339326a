package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
)

// KnownDeviceTTL is how long a browser stays known to an account after it
// signed in there.
const KnownDeviceTTL = 365 * 24 * time.Hour

// DeviceCookies issues and reads the known-device cookie: a browser that
// has signed in to an account carries one (HttpOnly, a year), signed with a
// server key and naming the user and the user's DeviceEpoch. Such a browser
// is exempt from the per-account wait that guesses from elsewhere impose;
// ending every session of the user (sign-out everywhere, password change or
// reset, disabling) moves the epoch on and voids the cookie. It names the
// last account signed in on the browser.
type DeviceCookies struct {
	key []byte
	// previous are key under earlier TONEARM_SECRET values: cookies they
	// signed still vouch while the secret is being rotated.
	previous [][]byte
	name     string
	secure   bool
	now      func() time.Time
}

// NewDeviceCookies returns the cookies of issuer, signed with key (≥ 32
// bytes); those signed with a previous key are still read.
func NewDeviceCookies(key []byte, issuer string, now func() time.Time, previous ...[]byte) *DeviceCookies {
	if now == nil {
		now = time.Now
	}
	d := &DeviceCookies{key: key, previous: previous, name: "tonearm_device", now: now}
	if u, err := url.Parse(issuer); err == nil && u.Scheme == "https" {
		d.name, d.secure = "__Host-tonearm_device", true
	}
	return d
}

type knownDevice struct {
	userID string
	epoch  int64
}

// Owner is the account the browser signed in to and that account's
// device epoch when it did ("" without a valid cookie).
func (d knownDevice) Owner() (userID string, epoch int64) { return d.userID, d.epoch }

// known reports whether the device is known to the account of a.
func (d knownDevice) known(a accounts.Attempt) bool {
	return d.userID != "" && d.userID == a.Account && d.epoch == a.DeviceEpoch
}

func (d *DeviceCookies) mac(payload string) string { return deviceMAC(d.key, payload) }

func deviceMAC(key []byte, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("known-device\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Set marks the browser known to userID at epoch.
func (d *DeviceCookies) Set(w http.ResponseWriter, userID string, epoch int64) {
	now := d.now()
	payload := base64.RawURLEncoding.EncodeToString([]byte(userID)) + "." + strconv.FormatInt(epoch, 10) + "." + strconv.FormatInt(now.Unix(), 10)
	http.SetCookie(w, &http.Cookie{
		Name: d.name, Value: payload + "." + d.mac(payload), Path: "/",
		Expires: now.Add(KnownDeviceTTL), MaxAge: int(KnownDeviceTTL.Seconds()),
		HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteLaxMode,
	})
}

// Read returns the device r's cookie vouches for (zero when none, forged
// or expired).
func (d *DeviceCookies) Read(r *http.Request) knownDevice {
	c, err := r.Cookie(d.name)
	if err != nil || len(c.Value) > 512 {
		return knownDevice{}
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return knownDevice{}
	}
	payload, sig := c.Value[:i], c.Value[i+1:]
	valid := hmac.Equal([]byte(sig), []byte(d.mac(payload)))
	for _, k := range d.previous {
		valid = hmac.Equal([]byte(sig), []byte(deviceMAC(k, payload))) || valid
	}
	if !valid {
		return knownDevice{}
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 {
		return knownDevice{}
	}
	id, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	epoch, err2 := strconv.ParseInt(parts[1], 10, 64)
	issued, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || d.now().Sub(time.Unix(issued, 0)) > KnownDeviceTTL {
		return knownDevice{}
	}
	return knownDevice{userID: string(id), epoch: epoch}
}
