package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MongoConfig configures OpenMongo.
type MongoConfig struct {
	// URL is the connection string, mongodb://host:port/. Required.
	URL string `yaml:"url"`
	// Database and Collection hold the keys. Defaults moonforge and kv.
	Database   string `yaml:"database"`
	Collection string `yaml:"collection"`
	// Timeout bounds connecting and server selection. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// Defaults of MongoConfig.
const (
	DefaultMongoDatabase   = "moonforge"
	DefaultMongoCollection = "kv"
)

// MongoStore is the Store on MongoDB (or a MongoDB-wire server such as
// FerretDB). All keys of one group (see Group) live in one document, so a
// batch within a group is atomic; an untagged key is a group of its own.
// Each write of a group inserts the group's next revision as a new document,
//
//	{_id: hex(head) + "-" + revision (16 hex digits), h: hex(head), k: {"_"+hex(rest): {v: value, n: version, exp: unix ms}}}
//
// where head is the group (or the whole key) and rest the key's bytes after
// it. The insert of a revision that already exists fails on the unique _id,
// so of two writers that read the same revision one wins and the other reads
// again: compare-and-set needs nothing from the server but a unique _id
// (FerretDB v1 applies filtered updates as a read then a write, so they are
// not atomic there). A revision is deleted once it is older than
// mongoKeepRevisions and not the newest; a writer whose read and insert were
// further apart than half that reports its write as of unknown outcome
// (ErrUnavailable), since the revision it inserted may have been one deleted
// meanwhile. Hex keeps byte order, and '-' sorts below every hex digit, so
// documents sorted by _id give keys in order. Batches across groups are
// applied group by group, not atomically (Capabilities.AtomicBatch false);
// expired keys are filtered on reads and dropped when their group is next
// written (FerretDB has no TTL indexes). A group's keys share MongoDB's
// 16 MiB document limit.
type MongoStore struct {
	life
	client *mongo.Client
	coll   *mongo.Collection
	caps   Capabilities
}

var _ Store = (*MongoStore)(nil)

// OpenMongo connects and checks the server with a ping.
func OpenMongo(ctx context.Context, cfg MongoConfig) (*MongoStore, error) {
	if cfg.URL == "" {
		return nil, errors.New("store: MongoConfig.URL is empty")
	}
	if cfg.Database == "" {
		cfg.Database = DefaultMongoDatabase
	}
	if cfg.Collection == "" {
		cfg.Collection = DefaultMongoCollection
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.URL).
		SetConnectTimeout(cfg.Timeout).SetServerSelectionTimeout(cfg.Timeout))
	if err != nil {
		return nil, fmt.Errorf("store: mongo %s: %w", cfg.URL, err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("store: mongo %s: %w", cfg.URL, mongoErr(err))
	}
	coll := client.Database(cfg.Database).Collection(cfg.Collection)
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "h", Value: 1}, {Key: "_id", Value: -1}}})
	if err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("store: mongo %s: index: %w", cfg.URL, mongoErr(err))
	}
	return &MongoStore{
		client: client,
		coll:   coll,
		caps: Capabilities{
			Backend:       "mongo",
			AtomicBatch:   false,
			Durable:       true,
			MaxValueLen:   MaxValueLen - 64<<10,
			MaxBatchOps:   10000,
			MaxBatchBytes: 64 << 20,
		},
	}, nil
}

// Capabilities implements Store. Durable assumes the server's default write
// concern journals writes (MongoDB's default; FerretDB commits to
// PostgreSQL).
func (s *MongoStore) Capabilities() Capabilities { return s.caps }

// mongoErr maps a driver error: the server's error replies stay as they
// are (a document over the size limit wraps ErrValueTooLarge), anything else
// (network errors, timeouts, no server to select) wraps ErrUnavailable.
func mongoErr(err error) error {
	var reply mongo.ServerError
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return err
	case !errors.As(err, &reply) || mongo.IsNetworkError(err) || mongo.IsTimeout(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case strings.Contains(err.Error(), "too large"):
		return fmt.Errorf("%w: %w", ErrValueTooLarge, err)
	}
	return err
}

// docHead is the _id text of key's document: its group, or the key itself.
func docHead(key string) string {
	if g := Group(key); g != "" {
		return g
	}
	return key
}

// field is the name of key's entry in its document.
func field(key string) string {
	return "_" + hex.EncodeToString([]byte(key[len(docHead(key)):]))
}

func docID(head string) string { return hex.EncodeToString([]byte(head)) }

// mongoEntry is one key of a document.
type mongoEntry struct {
	V   []byte `bson:"v"`
	N   int64  `bson:"n"`
	Exp int64  `bson:"exp"`
}

func (e mongoEntry) live(now int64) bool { return e.Exp == 0 || e.Exp > now }

type mongoDoc struct {
	ID string                `bson:"_id"`
	H  string                `bson:"h"` // docID of the group, indexed: FerretDB v1 pushes only equality down to PostgreSQL
	K  map[string]mongoEntry `bson:"k"`
	T  int64                 `bson:"t"` // insert time, unix ms
}

// mongoKeepRevisions is how long a superseded revision is kept, so that a
// writer that read the one before it cannot insert it again.
const mongoKeepRevisions = 2 * time.Minute

// Get implements Store.
func (s *MongoStore) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.GetVersion(ctx, key)
	return v, err
}

// GetVersion implements Store.
func (s *MongoStore) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := validateKey(key); err != nil {
		return nil, 0, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, 0, err
	}
	defer s.leave()
	doc, err := s.latest(ctx, docHead(key))
	if err != nil {
		return nil, 0, fmt.Errorf("store: get %s: %w", quoteStart(key), err)
	}
	e, ok := doc.K[field(key)]
	if !ok || !e.live(nowMillis()) {
		return nil, 0, ErrNotFound
	}
	if e.V == nil {
		e.V = []byte{}
	}
	return e.V, uint64(e.N), nil
}

// latest returns the newest revision of the group head, or an empty
// document at revision 0.
func (s *MongoStore) latest(ctx context.Context, head string) (mongoDoc, error) {
	var doc mongoDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "h", Value: docID(head)}},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&doc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return mongoDoc{ID: revID(head, 0)}, nil
	case err != nil:
		return mongoDoc{}, mongoErr(err)
	}
	return doc, nil
}

// revID is the _id of revision rev of group head.
func revID(head string, rev uint64) string { return fmt.Sprintf("%s-%016x", docID(head), rev) }

// revOf returns the revision of a document's _id.
func revOf(id string) uint64 {
	i := strings.LastIndexByte(id, '-')
	rev, _ := strconv.ParseUint(id[i+1:], 16, 64)
	return rev
}

// Put implements Store.
func (s *MongoStore) Put(ctx context.Context, key string, value []byte) error {
	return s.Batch(ctx, []Op{{Key: key, Value: value}})
}

// Delete implements Store.
func (s *MongoStore) Delete(ctx context.Context, key string) error {
	return s.Batch(ctx, []Op{{Key: key, Delete: true}})
}

// Batch implements Store: one update per document (group), in the order the
// groups first appear.
func (s *MongoStore) Batch(ctx context.Context, ops []Op) error {
	if err := validateOps(ops, s.caps); err != nil {
		return err
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	var groups [][]Op
	at := map[string]int{}
	for _, op := range ops {
		h := docHead(op.Key)
		i, ok := at[h]
		if !ok {
			i = len(groups)
			at[h] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], op)
	}
	if len(groups) > 1 && conditional(ops) {
		return fmt.Errorf("%w: %d ops in %d documents", ErrCrossGroup, len(ops), len(groups))
	}
	if len(groups) > 1 {
		return s.batchMany(ctx, groups)
	}
	if len(groups) == 0 {
		return nil
	}
	return s.updateDoc(ctx, docHead(groups[0][0].Key), groups[0])
}

// next returns the revision of group head after ops, based on doc, or
// changed false when ops write nothing. It checks the ops' conditions.
func next(doc mongoDoc, head string, ops []Op) (out mongoDoc, changed bool, err error) {
	now := nowMillis()
	k := make(map[string]mongoEntry, len(doc.K)+len(ops))
	for f, e := range doc.K {
		if e.live(now) {
			k[f] = e
		}
	}
	for _, op := range ops {
		if !op.conditional() {
			continue
		}
		if n := uint64(k[field(op.Key)].N); n != op.Version {
			return mongoDoc{}, false, conflictError(op.Key, op.Version, n)
		}
	}
	for _, op := range ops {
		f := field(op.Key)
		switch {
		case op.Check:
			continue
		case op.Delete:
			if _, ok := k[f]; !ok {
				continue
			}
			delete(k, f)
		default:
			v := op.Value
			if v == nil {
				v = []byte{}
			}
			k[f] = mongoEntry{V: v, N: k[f].N + 1, Exp: ttlExpiry(op.TTL)}
		}
		changed = true
	}
	return mongoDoc{ID: revID(head, revOf(doc.ID)+1), H: docID(head), K: k, T: time.Now().UnixMilli()}, changed, nil
}

// updateDoc applies ops, all of group head, by inserting the group's next
// revision; it reads again and retries when another writer inserted it
// first.
func (s *MongoStore) updateDoc(ctx context.Context, head string, ops []Op) error {
	for attempt := 0; ; attempt++ {
		read := time.Now()
		doc, err := s.latest(ctx, head)
		if err != nil {
			return fmt.Errorf("store: batch in group %s: %w", quoteStart(head), err)
		}
		doc, changed, err := next(doc, head, ops)
		if err != nil || !changed {
			return err
		}
		_, err = s.coll.InsertOne(ctx, doc)
		if mongo.IsDuplicateKeyError(err) && attempt < 1000 && ctx.Err() == nil {
			continue // another writer took this revision: read it and apply again
		}
		if err != nil {
			return fmt.Errorf("store: batch in group %s: %w", quoteStart(head), mongoErr(err))
		}
		return s.inserted(ctx, head, doc.ID, read)
	}
}

// inserted finishes a write whose revision id was inserted, read being when
// the revision it is based on was read: it reports a write that took too
// long, and deletes old revisions now and then.
func (s *MongoStore) inserted(ctx context.Context, head, id string, read time.Time) error {
	if took := time.Since(read); took > mongoKeepRevisions/2 {
		return fmt.Errorf("%w: a write in group %s took %v; it may have been lost", ErrUnavailable, quoteStart(head), took)
	}
	if revOf(id)%16 == 0 {
		// Best effort: readers take the newest revision whatever is left.
		_, _ = s.coll.DeleteMany(ctx, bson.D{
			{Key: "h", Value: docID(head)},
			{Key: "_id", Value: bson.D{{Key: "$lt", Value: id}}},
			{Key: "t", Value: bson.D{{Key: "$lt", Value: time.Now().Add(-mongoKeepRevisions).UnixMilli()}}},
		})
	}
	return nil
}

// batchMany applies an unconditional batch over many groups with one read
// and one insert per chunk of groups, falling back to updateDoc for the
// groups whose revision another writer took meanwhile.
func (s *MongoStore) batchMany(ctx context.Context, groups [][]Op) error {
	const chunk = 128
	for len(groups) > 0 {
		part := groups[:min(chunk, len(groups))]
		groups = groups[len(part):]
		read := time.Now()
		ids := make(bson.A, len(part))
		heads := make([]string, len(part))
		for i, g := range part {
			heads[i] = docHead(g[0].Key)
			ids[i] = docID(heads[i])
		}
		cur, err := s.coll.Find(ctx, bson.D{{Key: "h", Value: bson.D{{Key: "$in", Value: ids}}}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return fmt.Errorf("store: batch: %w", mongoErr(err))
		}
		var found []mongoDoc
		if err := cur.All(ctx, &found); err != nil {
			return fmt.Errorf("store: batch: %w", mongoErr(err))
		}
		latest := map[string]mongoDoc{}
		for _, d := range found { // ascending: the last of each head wins
			latest[headOf(d.ID)] = d
		}
		var docs []any
		var owners []int
		for i, g := range part {
			d, ok := latest[docID(heads[i])]
			if !ok {
				d = mongoDoc{ID: revID(heads[i], 0)}
			}
			d, changed, _ := next(d, heads[i], g)
			if changed {
				docs, owners = append(docs, d), append(owners, i)
			}
		}
		if len(docs) == 0 {
			continue
		}
		_, err = s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		var bulk mongo.BulkWriteException
		if err != nil && !errors.As(err, &bulk) {
			return fmt.Errorf("store: batch: %w", mongoErr(err))
		}
		retry := map[int]bool{}
		for _, we := range bulk.WriteErrors {
			if we.Code != 11000 { // duplicate key
				return fmt.Errorf("store: batch: %w", mongoErr(err))
			}
			retry[we.Index] = true
		}
		for j, d := range docs {
			i := owners[j]
			if retry[j] {
				if err := s.updateDoc(ctx, heads[i], part[i]); err != nil {
					return err
				}
				continue
			}
			if err := s.inserted(ctx, heads[i], d.(mongoDoc).ID, read); err != nil {
				return err
			}
		}
	}
	return nil
}

// mongoScanChunk is how many documents one Scan query reads.
const mongoScanChunk = 16

// Scan implements Store: documents in _id order, in chunks, their entries
// in key order.
func (s *MongoStore) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	// A prefix that holds a whole group head starts in that group's
	// document, whose _id (the head) sorts before the prefix.
	from := prefix
	if g := Group(prefix); g != "" {
		from = g
	}
	lower := bson.E{Key: "$gte", Value: docID(from)}
	end, bounded := prefixEnd(prefix)
	var pending *mongoDoc // the newest revision seen of the current group
	for {
		rng := bson.D{lower}
		if bounded {
			rng = append(rng, bson.E{Key: "$lt", Value: docID(end)})
		}
		docs, err := s.scanChunk(ctx, rng)
		if err != nil {
			return err
		}
		for i := range docs {
			if pending != nil && headOf(pending.ID) != headOf(docs[i].ID) {
				if err := visitDoc(*pending, prefix, fn); err != nil {
					return err
				}
			}
			pending = &docs[i]
		}
		if len(docs) < mongoScanChunk {
			if pending != nil {
				return visitDoc(*pending, prefix, fn)
			}
			return nil
		}
		lower = bson.E{Key: "$gt", Value: docs[len(docs)-1].ID}
	}
}

// headOf returns the hex head of a document's _id.
func headOf(id string) string { return id[:strings.LastIndexByte(id, '-')] }

func (s *MongoStore) scanChunk(ctx context.Context, rng bson.D) ([]mongoDoc, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: rng}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(mongoScanChunk))
	if err != nil {
		return nil, fmt.Errorf("store: scan: %w", mongoErr(err))
	}
	var docs []mongoDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("store: scan: %w", mongoErr(err))
	}
	return docs, nil
}

// visitDoc calls fn for the live entries of doc under prefix, in key order.
func visitDoc(doc mongoDoc, prefix string, fn func(key string, value []byte) error) error {
	head, err := hex.DecodeString(headOf(doc.ID))
	if err != nil {
		return fmt.Errorf("store: scan: document %q is not a store key", doc.ID)
	}
	now := nowMillis()
	type kv struct {
		key   string
		value []byte
	}
	var entries []kv
	for f, e := range doc.K {
		rest, err := hex.DecodeString(strings.TrimPrefix(f, "_"))
		if err != nil || !e.live(now) {
			continue
		}
		key := string(head) + string(rest)
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		if e.V == nil {
			e.V = []byte{}
		}
		entries = append(entries, kv{key, e.V})
	}
	slices.SortFunc(entries, func(a, b kv) int { return strings.Compare(a.key, b.key) })
	for _, e := range entries {
		if err := fn(e.key, e.value[:len(e.value):len(e.value)]); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Store.
func (s *MongoStore) Close() error {
	return s.end(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.client.Disconnect(ctx); err != nil {
			return fmt.Errorf("store: close: %w", err)
		}
		return nil
	})
}
