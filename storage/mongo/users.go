package mongo

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
)

// UserStore keeps staff accounts and their refresh sessions.
type UserStore struct{ db *DB }

var _ accounts.UserStore = (*UserStore)(nil)

// NewUserStore returns a UserStore on db.
func NewUserStore(db *DB) *UserStore { return &UserStore{db: db} }

var (
	errUserNotFound    = qingfeng.Errorf(qingfeng.ENOTFOUND, "用户不存在", "user not found")
	errUsernameTaken   = qingfeng.Errorf(qingfeng.ECONFLICT, "用户名已被使用", "the username is taken")
	errSessionNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "登录会话不存在或已过期", "session not found or expired")
	errSessionExists   = qingfeng.Errorf(qingfeng.ECONFLICT, "登录会话已存在", "the session already exists")
)

type userDoc struct {
	ID           string    `bson:"_id"`
	Username     string    `bson:"username"`
	DisplayName  string    `bson:"display_name"`
	Role         string    `bson:"role"`
	UnitID       string    `bson:"unit_id,omitempty"`
	Division     string    `bson:"division,omitempty"`
	PasswordHash string    `bson:"password_hash"`
	Disabled     bool      `bson:"disabled"`
	CreatedAt    time.Time `bson:"created_at"`
	UpdatedAt    time.Time `bson:"updated_at"`
}

type sessionDoc struct {
	ID          string    `bson:"_id"`
	UserID      string    `bson:"user_id"`
	RefreshHash string    `bson:"refresh_hash"`
	CreatedAt   time.Time `bson:"created_at"`
	ExpiresAt   time.Time `bson:"expires_at"`
}

func (d *userDoc) toUser() *accounts.User {
	return &accounts.User{
		ID:           d.ID,
		Username:     d.Username,
		DisplayName:  d.DisplayName,
		Role:         accounts.Role(d.Role),
		UnitID:       d.UnitID,
		Division:     d.Division,
		PasswordHash: d.PasswordHash,
		Disabled:     d.Disabled,
		CreatedAt:    d.CreatedAt,
		UpdatedAt:    d.UpdatedAt,
	}
}

// CreateUser stores a new account; a taken username (or ID) is ECONFLICT. Usernames
// are compared exactly: normalizing them (case, width) is the accounts package's job.
func (s *UserStore) CreateUser(ctx context.Context, u *accounts.User) error {
	d := userDoc{
		ID:           u.ID,
		Username:     u.Username,
		DisplayName:  u.DisplayName,
		Role:         string(u.Role),
		UnitID:       u.UnitID,
		Division:     u.Division,
		PasswordHash: u.PasswordHash,
		Disabled:     u.Disabled,
		CreatedAt:    utc(u.CreatedAt),
		UpdatedAt:    utc(u.UpdatedAt),
	}
	if _, err := s.db.coll(collUsers).InsertOne(ctx, d); err != nil {
		return storeError("store user "+u.ID, err, nil, errUsernameTaken)
	}
	return nil
}

func (s *UserStore) findUser(ctx context.Context, op string, filter bson.M) (*accounts.User, error) {
	var d userDoc
	if err := s.db.coll(collUsers).FindOne(ctx, filter).Decode(&d); err != nil {
		return nil, storeError(op, err, errUserNotFound, nil)
	}
	return d.toUser(), nil
}

// UserByID returns the account with ID id.
func (s *UserStore) UserByID(ctx context.Context, id string) (*accounts.User, error) {
	return s.findUser(ctx, "find user "+id, bson.M{"_id": id})
}

// UserByUsername returns the account named username.
func (s *UserStore) UserByUsername(ctx context.Context, username string) (*accounts.User, error) {
	return s.findUser(ctx, "find user by username", bson.M{"username": username})
}

// CountUsers returns the number of accounts, disabled ones included.
func (s *UserStore) CountUsers(ctx context.Context) (int64, error) {
	n, err := s.db.coll(collUsers).CountDocuments(ctx, bson.M{})
	if err != nil {
		return 0, storeError("count users", err, nil, nil)
	}
	return n, nil
}

// SetUserDisabled disables or re-enables account id.
func (s *UserStore) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	op := "set user disabled " + id
	res, err := s.db.updateOne(ctx, collUsers, id, nil, bson.M{
		"$set": bson.M{"disabled": disabled, "updated_at": s.db.now().UTC()},
	})
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		e := *errUserNotFound
		e.Err = errors.New(op + ": no such user")
		return &e
	}
	return nil
}

// CreateSession stores a new refresh session.
func (s *UserStore) CreateSession(ctx context.Context, sess *accounts.Session) error {
	d := sessionDoc{
		ID:          sess.ID,
		UserID:      sess.UserID,
		RefreshHash: sess.RefreshHash,
		CreatedAt:   utc(sess.CreatedAt),
		ExpiresAt:   utc(sess.ExpiresAt),
	}
	if _, err := s.db.coll(collSessions).InsertOne(ctx, d); err != nil {
		return storeError("store session "+sess.ID, err, nil, errSessionExists)
	}
	return nil
}

// RotateSession replaces the refresh hash of live session id if it still equals
// oldHash. The comparison and the replacement are one conditional update, so a
// refresh token presented twice (a replay, or two racing refreshes) wins at most once;
// every loser, like an unknown or expired session, gets EUNAUTHORIZED.
func (s *UserStore) RotateSession(ctx context.Context, id, oldHash, newHash string, expires time.Time) error {
	op := "rotate session " + id
	now := s.db.now().UTC()
	res, err := s.db.updateOne(ctx, collSessions, id,
		bson.M{"refresh_hash": oldHash, "expires_at": bson.M{"$gt": now}},
		bson.M{"$set": bson.M{"refresh_hash": newHash, "expires_at": utc(expires)}})
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		e := *qingfeng.ErrUnauthorized
		e.Err = errors.New(op + ": refresh hash does not match, or the session is gone or expired")
		return &e
	}
	return nil
}

// SessionByID returns live session id; an expired one is ENOTFOUND.
func (s *UserStore) SessionByID(ctx context.Context, id string) (*accounts.Session, error) {
	var d sessionDoc
	err := s.db.coll(collSessions).FindOne(ctx, bson.M{
		"_id":        id,
		"expires_at": bson.M{"$gt": s.db.now().UTC()},
	}).Decode(&d)
	if err != nil {
		return nil, storeError("find session "+id, err, errSessionNotFound, nil)
	}
	return &accounts.Session{
		ID:          d.ID,
		UserID:      d.UserID,
		RefreshHash: d.RefreshHash,
		CreatedAt:   d.CreatedAt,
		ExpiresAt:   d.ExpiresAt,
	}, nil
}

// DeleteSession removes session id (logout); a missing session is not an error, so
// logging out twice is harmless.
func (s *UserStore) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.coll(collSessions).DeleteOne(ctx, bson.M{"_id": id}); err != nil {
		return storeError("delete session "+id, err, nil, nil)
	}
	return nil
}
