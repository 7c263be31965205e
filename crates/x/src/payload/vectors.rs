//! docs/protocols.md A2 examples, verbatim.

pub(super) const AAA_TEXT_PRETTY: &str = r#"{"for_user_id":"40876567",
 "direct_message_events":[{"type":"message_create","id":"2039459599745679612","created_timestamp":"1775080034563",
   "message_create":{"target":{"recipient_id":"40876567"},"sender_id":"55125386",
     "message_data":{"text":"Hola2","entities":{"hashtags":[],"symbols":[],"user_mentions":[],"urls":[]}}}}],
 "users":{
   "55125386":{"id":"55125386","created_timestamp":"1247109333000","name":"Elizabeth Fuentes","screen_name":"ElizabethFue12",
     "location":"San Francisco, CA","description":"AWS Developer Advocate …","url":"https:\/\/t.co\/0hRAxShvGA",
     "protected":false,"verified":false,"followers_count":1146,"friends_count":1050,"statuses_count":32629,
     "profile_image_url":"http:\/\/pbs.twimg.com\/profile_images\/1603384697035182080\/iQFwc3l3_normal.jpg",
     "profile_image_url_https":"https:\/\/pbs.twimg.com\/profile_images\/1603384697035182080\/iQFwc3l3_normal.jpg"},
   "40876567":{"id":"40876567","created_timestamp":"1242654699000","name":"Ensamblador","screen_name":"ensamblador",
     "location":"Santiago, Chile","protected":false,"verified":false,"followers_count":6131,"friends_count":376,
     "statuses_count":43292,"profile_image_url_https":"https:\/\/pbs.twimg.com\/profile_images\/1281676323749011456\/kJjBtbmw_normal.jpg"}}}"#;

pub(super) const PHOTO_AND_ECHO: &str = r#"{
  "for_user_id": "4337869213",
  "direct_message_events": [
    {
      "type": "message_create",
      "id": "1547580822294646788",
      "created_timestamp": "1657806995353",
      "message_create": {
        "target": { "recipient_id": "4337869213" },
        "sender_id": "3001969357",
        "message_data": {
          "text": "Here is the receipt: https://t.co/J9dz8mhUqz",
          "entities": {
            "hashtags": [], "symbols": [], "user_mentions": [],
            "urls": [{ "url": "https://t.co/J9dz8mhUqz",
                       "expanded_url": "https://twitter.com/messages/media/1547580822294646788",
                       "display_url": "pic.twitter.com/J9dz8mhUqz", "indices": [21, 44] }]
          },
          "attachment": {
            "type": "media",
            "media": {
              "id": 1547580751654203394, "id_str": "1547580751654203394", "indices": [21, 44],
              "media_url": "https://ton.twitter.com/1.1/ton/data/dm/1547580822294646788/1547580751654203394/T7xt1pvd.jpg",
              "media_url_https": "https://ton.twitter.com/1.1/ton/data/dm/1547580822294646788/1547580751654203394/T7xt1pvd.jpg",
              "url": "https://t.co/J9dz8mhUqz", "display_url": "pic.twitter.com/J9dz8mhUqz",
              "expanded_url": "https://twitter.com/messages/media/1547580822294646788",
              "type": "photo",
              "sizes": { "thumb": {"w":150,"h":150,"resize":"crop"}, "small": {"w":680,"h":680,"resize":"fit"},
                         "medium": {"w":1000,"h":1000,"resize":"fit"}, "large": {"w":1000,"h":1000,"resize":"fit"} }
            }
          }
        }
      }
    },
    {
      "type": "message_create",
      "id": "1547581000123456789",
      "created_timestamp": "1657807042110",
      "message_create": {
        "target": { "recipient_id": "3001969357" },
        "sender_id": "4337869213",
        "source_app_id": "13090192",
        "message_data": { "text": "Thanks! An agent will be with you shortly.",
          "entities": { "hashtags": [], "symbols": [], "user_mentions": [], "urls": [] } }
      }
    }
  ],
  "apps": { "13090192": { "id": "13090192", "name": "AcmeSupportBridge", "url": "https://example.com" } },
  "users": {
    "3001969357": { "id": "3001969357", "created_timestamp": "1422556069340", "name": "Jordan Brinks",
      "screen_name": "furiouscamper", "protected": false, "verified": false, "followers_count": 22,
      "friends_count": 45, "statuses_count": 494,
      "profile_image_url_https": "https://pbs.twimg.com/profile_images/851526626785480705/cW4WTi7C_normal.jpg" },
    "4337869213": { "id": "4337869213", "created_timestamp": "1448312972328", "name": "Acme Support",
      "screen_name": "AcmeSupport", "protected": false, "verified": false, "followers_count": 8,
      "friends_count": 8, "statuses_count": 240,
      "profile_image_url_https": "https://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png" }
  }
}"#;

pub(super) const TYPING: &str = r#"{"for_user_id":"4337869213","direct_message_indicate_typing_events":[{"created_timestamp":"1518127183443",
  "sender_id":"3284025577","target":{"recipient_id":"3001969357"}}],"users":{"…":{}}}"#;

pub(super) const READ: &str = r#"{"for_user_id":"4337869213","direct_message_mark_read_events":[{"created_timestamp":"1518452444662",
  "sender_id":"199566737","target":{"recipient_id":"3001969357"},"last_read_event_id":"963085315333238788"}],"users":{"…":{}}}"#;

pub(super) const REVOKE: &str = r#"{"user_event":{"revoke":{"date_time":"2018-05-24T09:48:12+00:00","target":{"app_id":"13090192"},"source":{"user_id":"63046977"}}}}"#;

pub(super) const XAA: &str = r#"{"data":{"event_uuid":"-6850472171600526495","filter":{"user_id":"1111111111111111111"},"event_type":"dm.received","tag":"dm-inbound",
  "payload":{"direct_message_events":[{"type":"message_create","id":"2080765901528535096","created_timestamp":"1784928224372",
      "message_create":{"target":{"recipient_id":"1111111111111111111"},"sender_id":"2222222222222222222",
        "message_data":{"text":"hello!","entities":{"hashtags":[],"symbols":[],"user_mentions":[],"urls":[]}}}}],
    "users":{"2222222222222222222":{"data":{"id":"2222222222222222222","username":"OtherUser","name":"OtherUser",
      "profile_image_url":"https://pbs.twimg.com/profile_images/…_normal.jpg","protected":false,"verified":false}}}}}}"#;
